import { ApiProperty } from '@nestjs/swagger';
import { IsEmail, IsInt, IsNotEmpty, IsString, Max, Min } from 'class-validator';

/** A record of the typed table `users`. */
export class UserDto {
  @ApiProperty({ example: 'ada@example.com', format: 'email' })
  @IsEmail()
  readonly email: string;

  @ApiProperty({ example: 'Ada Lovelace', minLength: 1 })
  @IsString()
  @IsNotEmpty()
  readonly full_name: string;

  @ApiProperty({ example: 36, minimum: 0, maximum: 150, type: 'integer' })
  @IsInt()
  @Min(0)
  @Max(150)
  readonly age: number;
}
